/* sign_early: the payload digest of a stream QEMU writes into a fresh file,
 * hashed while QEMU still writes it (sign.h, sig_early_*).
 *
 * With the VM stopped QEMU writes each byte of its stream once, so a chunk
 * with no hole left is complete and final: it is hashed at once, from the
 * cache (or the disk), while the CPUs would otherwise wait for the writes.
 * A chunk still holding a hole once the chunks EARLY_SKIP further on are
 * complete keeps its hole (zero pages, padding) and is left to the pass
 * after the stream. Where QEMU may write a byte again (a v3 stream's block
 * headers, whose bitmaps come at the end), the caller says which ranges
 * are final (sig_early_restrict) and the other chunks are hashed again. */
#include "sign_job.h"
#include "err.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#define EARLY_SKIP 16
#define EARLY_POLL_US 2000

struct sig_early {
	struct sig_job j; /* n_chunks: the most chunks the stream may have */
	uint8_t *done;    /* per chunk: 1 once hashed (release store) */
	pthread_t tid[SIG_MAX_THREADS];
	int started;
	int stop;         /* (atomic) */
};

static bool complete(const struct sig_job *j, uint64_t i)
{
	uint64_t start = j->off + i * j->chunk;
	off_t h = lseek(j->fd, (off_t)start, SEEK_HOLE);

	return h >= 0 && (uint64_t)h >= start + j->chunk;
}

static bool stopped(struct sig_early *e)
{
	return __atomic_load_n(&e->stop, __ATOMIC_ACQUIRE);
}

static void *early_worker(void *arg)
{
	struct sig_early *e = arg;
	struct sig_job *j = &e->j;
	uint8_t *buf = malloc(SIG_READ_PIECE);
	uint64_t i;

	/* An optimisation only: a chunk not hashed here is hashed after. */
	while (buf && (i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n_chunks) {
		while (!stopped(e)) {
			if (complete(j, i)) {
				if (sig_job_hash(j, i, buf) == 0)
					__atomic_store_n(&e->done[i], 1, __ATOMIC_RELEASE);
				/* Its writeback starts now, in order, rather than when the
				 * kernel's flusher gets to it: less dirty data to throttle
				 * QEMU on, less left for the final sync. */
				sync_file_range(j->fd, (off_t)(j->off + i * j->chunk), j->chunk,
						SYNC_FILE_RANGE_WRITE);
				break;
			}
			if (i + EARLY_SKIP < j->n_chunks && complete(j, i + EARLY_SKIP))
				break;
			usleep(EARLY_POLL_US);
		}
		if (stopped(e))
			break;
	}
	free(buf);
	return NULL;
}

/* File systems whose SEEK_HOLE reports every unwritten range: a file system
 * without it reports data up to the file's size, and a v3 stream sets that
 * size before QEMU writes the pages below it. */
static bool holes_reported(int fd)
{
	struct statfs f;

	return fstatfs(fd, &f) == 0 && (f.f_type == 0xEF53 /* ext2/3/4 */ ||
					f.f_type == 0x58465342 /* xfs */ ||
					f.f_type == 0x01021994 /* tmpfs */);
}

struct sig_early *sig_early_start(int fd, uint64_t off, uint64_t max_len, uint32_t chunk,
				  int threads)
{
	struct sig_early *e;

	if (!holes_reported(fd) || !(e = calloc(1, sizeof(*e))))
		return NULL;
	e->j = (struct sig_job){ .fd = fd, .off = off, .chunk = chunk, .n_chunks = max_len / chunk };
	e->j.len = e->j.n_chunks * chunk;
	e->j.hashes = malloc(e->j.n_chunks * SIG_HASH + 1);
	e->done = calloc(e->j.n_chunks + 1, 1);
	if (!e->j.hashes || !e->done) {
		sig_early_free(e);
		return NULL;
	}
	sig_zero_hash(chunk, e->j.zero_hash);
	threads = sig_job_threads(threads, e->j.n_chunks);
	while (e->started < threads &&
	       pthread_create(&e->tid[e->started], NULL, early_worker, e) == 0)
		e->started++;
	return e;
}

static void early_stop(struct sig_early *e)
{
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
	for (; e->started > 0; e->started--)
		pthread_join(e->tid[e->started - 1], NULL);
}

void sig_early_free(struct sig_early *e)
{
	if (!e)
		return;
	early_stop(e);
	free(e->j.hashes);
	free(e->done);
	free(e);
}

static bool inside(uint64_t start, uint64_t end, const struct file_range *r, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (start >= r[k].start && end <= r[k].end)
			return true;
	return false;
}

void sig_early_restrict(struct sig_early *e, const struct file_range *final, size_t n)
{
	early_stop(e);
	for (uint64_t i = 0; i < e->j.n_chunks; i++) {
		uint64_t start = e->j.off + i * e->j.chunk;
		if (e->done[i] && !inside(start, start + e->j.chunk, final, n))
			e->done[i] = 0;
	}
}

int sig_early_finish(struct sig_early *e, bool keep, int fd, uint64_t len, int threads,
		     uint8_t out[SIG_HASH], struct sig_info *info)
{
	struct sig_pre pre = { .hashes = e->j.hashes, .done = e->done, .n_chunks = e->j.n_chunks,
			       .off = e->j.off, .chunk = e->j.chunk };
	int rc;

	early_stop(e);
	for (uint64_t i = 0; i < e->j.n_chunks; i++) {
		if (!keep)
			e->done[i] = 0;
		if (e->done[i] && (i + 1) * e->j.chunk <= len)
			pre.bytes += e->j.chunk;
	}
	rc = sig_job_digest(fd, e->j.off, len, e->j.chunk, threads, &pre, out, info);
	sig_early_free(e);
	return rc;
}
