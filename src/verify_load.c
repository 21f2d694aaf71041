/* verify_load: a signed v3 image whose main RAM block vmsnap loads itself
 * (verify.h). QEMU gets a copy of the stream without that block's pages and
 * with its bitmap cleared, so it loads none of them (mapped-ram leaves the
 * pages its bitmap does not name as they are); vmsnap reads them from the
 * image straight into the guest's memory, a memfd QEMU shares, and checks
 * each chunk there against the chunk table. Every byte QEMU parses or the
 * guest will see is checked before QEMU reads it, and the disk is read
 * once. README, "What signing costs". */
#include "verify.h"
#include "verify_split.h"
#include "err.h"
#include "log.h"
#include "sign.h"
#include "sign_job.h"
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Chunk i lies wholly in the block's pages region: loaded by vfy_load_ram. */
static bool inside(const struct img_header *h, const struct vfy_split *sp, uint64_t i)
{
	uint64_t at = h->stream_offset + i * h->digest_chunk;

	return at >= sp->region.start && at + h->digest_chunk <= sp->region.end &&
	       (i + 1) * h->digest_chunk <= h->stream_length;
}

static int mismatch(const char *path, uint64_t at, const char *block, const char *when)
{
	return err_set(EXIT_REFUSED,
		       "image %s: payload digest mismatch at byte %llu%s%s%s: the QEMU stream was changed or is corrupt; %s",
		       path, (unsigned long long)at, block ? " (RAM block " : "", block ? block : "",
		       block ? ")" : "", when);
}

/* Chunk i (len bytes at at, checked) into the copy mfd; the part of it in
 * the region kept aside for vfy_load_ram instead. */
static int copy_chunk(struct vfy_split *sp, int mfd, const uint8_t *buf, uint64_t at, uint64_t len)
{
	uint64_t lo = at > sp->region.start ? at : sp->region.start;
	uint64_t hi = at + len < sp->region.end ? at + len : sp->region.end;
	int e = sp->edge[0].buf ? 1 : 0;

	if (lo >= hi)
		return pwrite_all(mfd, buf, len, (off_t)at) < 0 ? -1 : 0;
	if (sp->edge[1].buf || !(sp->edge[e].buf = malloc(hi - lo)))
		return -1;
	memcpy(sp->edge[e].buf, buf + (lo - at), hi - lo);
	sp->edge[e].ram_off = lo - sp->region.start;
	sp->edge[e].len = hi - lo;
	if (lo > at && pwrite_all(mfd, buf, lo - at, (off_t)at) < 0)
		return -1;
	if (at + len > hi && pwrite_all(mfd, buf + (hi - at), at + len - hi, (off_t)hi) < 0)
		return -1;
	return 0;
}

/* The copy's layout, read back from the copy: the block where the image's
 * said it is (the copy is what QEMU will parse). */
static bool same_layout(int mfd, const struct img_header *h, const struct vfy_split *sp)
{
	struct file_range r[MR_MAX_BLOCKS];
	struct mr_info info[MR_MAX_BLOCKS];
	int n = mr_blocks(mfd, h->stream_offset, h->stream_length, r, info, MR_MAX_BLOCKS);

	for (int i = 0; i < n; i++)
		if (!strcmp(info[i].id, sp->block.id))
			return r[i].start == sp->region.start && r[i].end == sp->region.end &&
			       info[i].bitmap == sp->block.bitmap && info[i].page == sp->block.page;
	return false;
}

/* The block's bitmap kept, and cleared in the copy. */
static int take_bitmap(struct vfy_split *sp, int mfd)
{
	uint64_t len = mr_bitmap_len(sp->region.end - sp->region.start, sp->block.page);
	uint8_t *zero = calloc(1, len);

	sp->bitmap = malloc(len);
	if (!zero || !sp->bitmap || pread_all(mfd, sp->bitmap, len, (off_t)sp->block.bitmap) != (ssize_t)len ||
	    pwrite_all(mfd, zero, len, (off_t)sp->block.bitmap) < 0) {
		free(zero);
		return -1;
	}
	free(zero);
	return 0;
}

/* QEMU looks in an fdset for a descriptor opened as it would open the file
 * (read-only): the copy, opened again so. */
static int read_only(int mfd, const char *path)
{
	int fd = stor_reopen(mfd, O_RDONLY);

	close(mfd);
	return fd < 0 ? err_sys(EXIT_FAIL, "image %s: a copy of its stream for QEMU", path) : fd;
}

int vfy_load_stream(struct vfy_result *r, int fd, const char *path)
{
	const struct img_header *h = &r->h;
	struct vfy_split *sp = r->split;
	uint64_t c = h->digest_chunk, end = h->stream_offset + h->stream_length, t0 = now_ms();
	uint8_t *buf, d[SIG_HASH];
	int mfd, rc = 0;

	if (!sp || h->version != 3 || !sp->block.page || IMG_ALIGN % sp->block.page)
		return -2;
	if ((mfd = memfd_create("vmsnap-stream", MFD_CLOEXEC)) < 0 || ftruncate(mfd, (off_t)end) < 0 ||
	    !(buf = malloc(c))) {
		if (mfd >= 0)
			close(mfd);
		return err_sys(EXIT_FAIL, "image %s: a copy of its stream for QEMU", path);
	}
	for (uint64_t i = 0; i < sp->n && rc == 0; i++) {
		uint64_t at = h->stream_offset + i * c, len = end - at < c ? end - at : c;
		if (inside(h, sp, i))
			continue;
		if (pread_all(fd, buf, len, (off_t)at) != (ssize_t)len) {
			rc = err_sys(EXIT_FAIL, "reading %s", path);
			break;
		}
		r->digest_read += len;
		sig_sha256(buf, len, d);
		if (memcmp(d, sp->table + i * SIG_HASH, SIG_HASH))
			rc = mismatch(path, at, NULL, "QEMU was not started");
		else if (copy_chunk(sp, mfd, buf, at, len) < 0)
			rc = err_sys(EXIT_FAIL, "image %s: a copy of its stream for QEMU", path);
	}
	free(buf);
	if (rc == 0 && (take_bitmap(sp, mfd) < 0 || !same_layout(mfd, h, sp)))
		rc = err_set(EXIT_FAIL, "image %s: its RAM block %s could not be set apart for loading",
			     path, sp->block.id);
	r->digest_ms += now_ms() - t0;
	log_debug("image %s: the stream but RAM block %s checked into a copy for QEMU in %llu ms", path,
		  sp->block.id, (unsigned long long)(now_ms() - t0));
	if (rc < 0) {
		close(mfd);
		return -1;
	}
	return read_only(mfd, path);
}

/* The region's whole chunks, read into the guest's memory by threads that
 * each hash the chunk where it landed. */
struct fill {
	const struct img_header *h;
	const struct vfy_split *sp;
	int fd, ram_fd;
	uint8_t *ram;
	uint64_t next, bad; /* bad: the first chunk that differs, + 1 */
	int failed;         /* errno of a read that failed */
	uint64_t read;
};

static void note_bad(struct fill *f, uint64_t i)
{
	uint64_t b = __atomic_load_n(&f->bad, __ATOMIC_RELAXED);

	while ((!b || i + 1 < b) &&
	       !__atomic_compare_exchange_n(&f->bad, &b, i + 1, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void *fill_worker(void *arg)
{
	struct fill *f = arg;
	uint64_t c = f->h->digest_chunk, i;
	uint8_t d[SIG_HASH];

	while (!__atomic_load_n(&f->failed, __ATOMIC_RELAXED) &&
	       (i = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED)) < f->sp->n) {
		uint64_t at = f->h->stream_offset + i * c, off = at - f->sp->region.start;
		if (!inside(f->h, f->sp, i))
			continue;
		if (!f->sp->deferred[i]) { /* a hole in the file and zeros in the table: checked */
			fallocate(f->ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)c);
			continue;
		}
		if (pread_all(f->fd, f->ram + off, c, (off_t)at) != (ssize_t)c) {
			__atomic_store_n(&f->failed, errno ? errno : EIO, __ATOMIC_RELAXED);
			break;
		}
		__atomic_fetch_add(&f->read, c, __ATOMIC_RELAXED);
		sig_sha256(f->ram + off, c, d);
		if (memcmp(d, f->sp->table + i * SIG_HASH, SIG_HASH))
			note_bad(f, i);
	}
	return NULL;
}

/* The pages the bitmap does not name are zero, as they were at the save.
 * QEMU waiting for a stream writes no ROM image into RAM (seen: the test
 * guest's -kernel ELF is not there), but what the guest gets is vmsnap's to
 * vouch for; a hole in the memfd reads as zeros and takes no memory. */
static void zero_unnamed(const struct vfy_split *sp, int ram_fd)
{
	uint64_t page = sp->block.page, pages = (sp->region.end - sp->region.start) / page;

	for (uint64_t p = 0; p < pages;) {
		uint64_t w, q;
		memcpy(&w, sp->bitmap + p / 64 * 8, 8); /* host-endian longs */
		if (p % 64 == 0 && w == ~0ull) {
			p += 64;
			continue;
		}
		if (w >> (p % 64) & 1) {
			p++;
			continue;
		}
		for (q = p + 1; q < pages; q++) {
			memcpy(&w, sp->bitmap + q / 64 * 8, 8);
			if (w >> (q % 64) & 1)
				break;
		}
		fallocate(ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(p * page),
			  (off_t)((q - p) * page));
		p = q;
	}
}

int vfy_load_ram(struct vfy_result *r, int fd, int ram_fd, const char *path)
{
	const struct img_header *h = &r->h;
	struct vfy_split *sp = r->split;
	uint64_t len = sp->region.end - sp->region.start, t0 = now_ms();
	struct fill f = { .h = h, .sp = sp, .fd = fd, .ram_fd = ram_fd };
	pthread_t tid[SIG_MAX_THREADS];
	/* Four per usable CPU: the disk is the limit, and it wants reads in
	 * flight while chunks are hashed (1 GiB with O_DIRECT on 2 CPUs: 2.0 s
	 * with 2 threads, 1.2-1.3 s with 4, 1.0-1.2 s with 8). */
	int threads = sig_job_threads(4 * usable_cpus(), sp->n), started = 0;

	f.ram = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	if (f.ram == MAP_FAILED)
		return err_sys(EXIT_FAIL, "mapping the guest's RAM");
	for (; started < threads - 1; started++)
		if (pthread_create(&tid[started], NULL, fill_worker, &f))
			break;
	fill_worker(&f);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	for (int e = 0; e < 2 && !f.failed && !f.bad; e++)
		if (sp->edge[e].buf)
			memcpy(f.ram + sp->edge[e].ram_off, sp->edge[e].buf, sp->edge[e].len);
	munmap(f.ram, len);
	r->digest_read += f.read;
	r->digest_ms += now_ms() - t0;
	if (f.failed) {
		errno = f.failed;
		return err_sys(EXIT_FAIL, "reading %s into the guest's RAM", path);
	}
	if (f.bad)
		return mismatch(path, h->stream_offset + (f.bad - 1) * h->digest_chunk, sp->block.id,
				"QEMU loaded none of it and the guest did not run");
	zero_unnamed(sp, ram_fd);
	r->payload_checked = true;
	r->in_flight = true;
	log_debug("image %s: RAM block %s loaded and checked, %llu MiB read in %llu ms (%d threads)",
		  path, sp->block.id, (unsigned long long)(f.read >> 20),
		  (unsigned long long)(now_ms() - t0), threads);
	return 0;
}
