/* sign_from: chunks of a payload digest hashed from the same bytes held
 * elsewhere (sign.h, sig_pre_*). A signed v3 save with QEMU's direct-io
 * leaves none of the stream in the page cache, and reading it back is a
 * second pass at disk speed; but with the VM stopped, a RAM block's pages
 * region in the stream holds exactly the block's memory (zero pages are
 * holes, read as zeros), so its chunks are hashed from QEMU's memory at
 * memory speed, and sig_pre_check compares a sample with the file. */
#include "sign_job.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct from {
	struct sig_job j;   /* fd: the source; off: where chunk 0 would be in it */
	uint64_t first, end; /* the chunks [first, end) lie within the range */
	uint8_t *done;
};

static void *from_worker(void *arg)
{
	struct from *f = arg;
	uint8_t *buf = malloc(SIG_READ_PIECE);
	uint64_t i;
	int e = buf ? 0 : ENOMEM;

	while (!e && !__atomic_load_n(&f->j.failed, __ATOMIC_RELAXED) &&
	       (i = __atomic_fetch_add(&f->j.next, 1, __ATOMIC_RELAXED)) < f->end - f->first) {
		e = sig_job_hash(&f->j, f->first + i, buf);
		if (!e)
			f->done[f->first + i] = 1;
	}
	if (e)
		__atomic_store_n(&f->j.failed, e, __ATOMIC_RELAXED);
	free(buf);
	return NULL;
}

static void from_run(struct from *f, int threads)
{
	pthread_t tid[SIG_MAX_THREADS];
	int started = 0;

	threads = sig_job_threads(threads, f->end - f->first);
	for (; started < threads - 1; started++)
		if (pthread_create(&tid[started], NULL, from_worker, f))
			break;
	from_worker(f);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

/* An empty set of n chunks' hashes for the region at off; NULL, err set. */
static struct sig_pre *pre_new(uint64_t n, uint64_t off, uint32_t chunk)
{
	struct sig_pre *pre = calloc(1, sizeof(*pre));

	if (pre) {
		*pre = (struct sig_pre){ .n_chunks = n, .off = off, .chunk = chunk };
		pre->hashes = malloc(n * SIG_HASH + 1);
		pre->done = calloc(n + 1, 1);
	}
	if (!pre || !pre->hashes || !pre->done) {
		sig_pre_free(pre);
		err_sys(EXIT_FAIL, "payload digest");
		return NULL;
	}
	return pre;
}

struct sig_pre *sig_pre_from(int src, uint64_t src_off, struct file_range in, uint64_t off,
			     uint64_t len, uint32_t chunk, int threads)
{
	struct from f = { .j = { .fd = src, .len = len, .chunk = chunk } };
	struct sig_pre *pre;

	f.j.n_chunks = (len + chunk - 1) / chunk;
	f.first = in.start > off ? (in.start - off + chunk - 1) / chunk : 0;
	f.end = in.end > off ? (in.end - off) / chunk : 0;
	if (f.end > len / chunk)
		f.end = len / chunk; /* whole chunks only */
	if (f.end < f.first)
		f.end = f.first;
	/* chunk i is at off + i * chunk in the file, src_off + that - in.start in src */
	f.j.off = src_off + off - in.start;
	if (!(pre = pre_new(f.j.n_chunks, off, chunk)))
		return NULL;
	f.j.hashes = pre->hashes;
	f.done = pre->done;
	sig_zero_hash(chunk, f.j.zero_hash);
	from_run(&f, threads);
	if (f.j.failed) {
		sig_pre_free(pre);
		errno = f.j.failed;
		err_sys(EXIT_FAIL, "reading the VM's memory for the payload digest");
		return NULL;
	}
	for (uint64_t i = f.first; i < f.end; i++)
		pre->bytes += pre->done[i] ? chunk : 0;
	return pre;
}

/* Hashing ahead: the pieces of src hashed before the region's layout is
 * known, in threads of their own while the caller goes on. */
struct sig_ahead {
	struct from f;
	uint64_t phase;
	pthread_t tid[SIG_MAX_THREADS];
	int started;
};

static void *ahead_worker(void *arg)
{
	return from_worker(arg);
}

struct sig_ahead *sig_ahead_start(int src, uint64_t src_off, uint64_t src_len, uint64_t phase,
				  uint32_t chunk, int threads)
{
	struct sig_ahead *a = calloc(1, sizeof(*a));
	uint64_t n = src_len > phase ? (src_len - phase) / chunk : 0;

	if (!a)
		return NULL;
	a->phase = phase;
	a->f.j = (struct sig_job){ .fd = src, .off = src_off + phase, .len = n * chunk,
				   .chunk = chunk, .n_chunks = n };
	a->f.end = n;
	a->f.j.hashes = malloc(n * SIG_HASH + 1);
	a->f.done = calloc(n + 1, 1);
	if (!a->f.j.hashes || !a->f.done) {
		sig_ahead_free(a);
		return NULL;
	}
	sig_zero_hash(chunk, a->f.j.zero_hash);
	threads = sig_job_threads(threads, n);
	while (a->started < threads &&
	       pthread_create(&a->tid[a->started], NULL, ahead_worker, &a->f) == 0)
		a->started++;
	return a;
}

static void ahead_join(struct sig_ahead *a)
{
	for (; a->started > 0; a->started--)
		pthread_join(a->tid[a->started - 1], NULL);
}

struct sig_pre *sig_ahead_take(struct sig_ahead *a, struct file_range in, uint64_t off,
			       uint64_t len)
{
	uint32_t chunk = a->f.j.chunk;
	struct sig_pre *pre;

	ahead_join(a);
	if (a->f.j.failed) {
		errno = a->f.j.failed;
		err_sys(EXIT_FAIL, "reading the VM's memory for the payload digest");
		return NULL;
	}
	if (!(pre = pre_new((len + chunk - 1) / chunk, off, chunk)))
		return NULL;
	/* chunk k is at x = off + k * chunk - in.start in src: hashed if x = phase + j * chunk */
	for (uint64_t k = 0; k < len / chunk; k++) {
		uint64_t at = off + k * chunk, x, j;
		if (at < in.start || at + chunk > in.end || (at - in.start) < a->phase ||
		    (at - in.start - a->phase) % chunk)
			continue;
		x = at - in.start;
		j = (x - a->phase) / chunk;
		if (j < a->f.end && a->f.done[j]) {
			memcpy(pre->hashes + k * SIG_HASH, a->f.j.hashes + j * SIG_HASH, SIG_HASH);
			pre->done[k] = 1;
			pre->bytes += chunk;
		}
	}
	return pre;
}

void sig_ahead_free(struct sig_ahead *a)
{
	if (!a)
		return;
	__atomic_store_n(&a->f.j.failed, ECANCELED, __ATOMIC_RELAXED);
	ahead_join(a);
	free(a->f.j.hashes);
	free(a->f.done);
	free(a);
}

int sig_pre_check(const struct sig_pre *pre, int fd, int n)
{
	struct sig_job j = { .fd = fd, .off = pre->off, .chunk = pre->chunk,
			     .len = pre->n_chunks * pre->chunk, .n_chunks = pre->n_chunks };
	uint8_t *buf = malloc(SIG_READ_PIECE), hash[SIG_HASH];
	uint64_t have = 0, step, seen = 0;
	int rc = 0, e;

	if (!buf)
		return err_sys(EXIT_FAIL, "payload digest");
	for (uint64_t i = 0; i < pre->n_chunks; i++)
		have += pre->done[i];
	step = have / (uint64_t)(n > 0 ? n : 1) + 1;
	sig_zero_hash(pre->chunk, j.zero_hash);
	j.hashes = hash; /* each sample is chunk 0 of a job at its offset */
	for (uint64_t i = 0; i < pre->n_chunks && rc == 0; i++) {
		if (!pre->done[i] || seen++ % step)
			continue;
		j.off = pre->off + i * pre->chunk;
		if ((e = sig_job_hash(&j, 0, buf)) != 0) {
			errno = e;
			rc = err_sys(EXIT_FAIL, "reading the image to check the digest's sample");
		} else if (memcmp(hash, pre->hashes + i * SIG_HASH, SIG_HASH)) {
			rc = 1;
		}
	}
	free(buf);
	return rc;
}

int sig_pre_digest(const struct sig_pre *pre, int fd, uint64_t len, int threads,
		   uint8_t out[SIG_HASH], struct sig_info *info)
{
	return sig_job_digest(fd, pre->off, len, pre->chunk, threads, pre, out, info);
}

uint64_t sig_pre_bytes(const struct sig_pre *pre)
{
	return pre->bytes;
}

void sig_pre_free(struct sig_pre *pre)
{
	if (!pre)
		return;
	free(pre->hashes);
	free(pre->done);
	free(pre);
}
