/* sign_digest: the payload digest of an image's stream region (see sign.h):
 * root = SHA-256("vmsnap-payload-v1", chunk, length, H(chunk 0), H(chunk 1)...),
 * chunks hashed in parallel, holes recognised with SEEK_DATA and not read.
 * Buffered reads are asked for ahead of the workers (POSIX_FADV_WILLNEED), so
 * a cold image streams from the disk at its speed while the chunks before
 * are hashed: several threads reading 1 MiB each at scattered offsets defeat
 * the kernel's own readahead of one file description. An fd with O_DIRECT
 * (provision's read-back) gets aligned reads, four threads per one asked
 * for and no read-ahead. */
#include "sign_job.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbedtls/sha256.h"

#define AHEAD (32ull << 20)   /* bytes asked for ahead of the chunk being taken */

void sig_sha256(const void *buf, size_t len, uint8_t out[SIG_HASH])
{
	mbedtls_sha256(buf, len, out, 0);
}

void sig_zero_hash(uint64_t len, uint8_t out[SIG_HASH])
{
	uint8_t zero[512] = { 0 }; /* on the stack: a static one would grow the binary */
	mbedtls_sha256_context c;

	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		mbedtls_sha256_update(&c, zero, n);
		len -= n;
	}
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
}

void sig_payload_root(uint32_t chunk, uint64_t len, const uint8_t *hashes, uint64_t n,
		      uint8_t out[SIG_HASH])
{
	uint8_t hdr[18 + 16];
	mbedtls_sha256_context c;

	memcpy(hdr, "vmsnap-payload-v1", 18);
	for (int i = 0; i < 8; i++) {
		hdr[18 + i] = (uint8_t)((uint64_t)chunk >> (8 * i));
		hdr[26 + i] = (uint8_t)(len >> (8 * i));
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	mbedtls_sha256_update(&c, hdr, sizeof(hdr));
	mbedtls_sha256_update(&c, hashes, n * SIG_HASH);
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
}

/* True when [off, off+len) holds no data (a hole, or past the end). */
static int is_hole(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO; /* no data from off to the end */
	return (uint64_t)d >= off + len;
}

int sig_job_hash(struct sig_job *j, uint64_t i, uint8_t *buf)
{
	uint64_t start = j->off + i * j->chunk;
	uint64_t len = j->len - i * j->chunk < j->chunk ? j->len - i * j->chunk : j->chunk;
	uint8_t *out = j->hashes + i * SIG_HASH;
	mbedtls_sha256_context c;

	if (is_hole(j->fd, start, len)) {
		if (len == j->chunk)
			memcpy(out, j->zero_hash, SIG_HASH);
		else
			sig_zero_hash(len, out);
		return 0;
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < SIG_READ_PIECE ? (size_t)(len - done) : SIG_READ_PIECE;
		/* O_DIRECT: one read, of whole blocks (a tail reads on into what follows) */
		ssize_t r = j->direct ? pread(j->fd, buf, ALIGN_UP(n, 4096), (off_t)(start + done))
				      : pread_all(j->fd, buf, n, (off_t)(start + done));
		if (r < 0 || (size_t)r < n) {
			mbedtls_sha256_free(&c);
			return r < 0 ? errno : EIO;
		}
		mbedtls_sha256_update(&c, buf, n);
		done += n;
	}
	__atomic_fetch_add(&j->bytes_read, len, __ATOMIC_RELAXED);
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
	return 0;
}

/* Keep the kernel reading AHEAD bytes in front of chunk i (a hint: no error). */
static void read_ahead(struct sig_job *j, uint64_t i)
{
	uint64_t at = i * j->chunk + AHEAD, step = j->chunk > (8u << 20) ? j->chunk : (8u << 20);

	/* Once per 8 MiB step, the whole step: fewer, larger requests. */
	if (j->direct || at >= j->len || (i * j->chunk) % step >= j->chunk)
		return;
	posix_fadvise(j->fd, (off_t)(j->off + at), (off_t)(j->len - at < step ? j->len - at : step),
		      POSIX_FADV_WILLNEED);
}

static void *worker(void *arg)
{
	struct sig_job *j = arg;
	uint8_t *buf;

	if (posix_memalign((void **)&buf, 4096, SIG_READ_PIECE)) {
		__atomic_store_n(&j->failed, ENOMEM, __ATOMIC_RELAXED);
		return NULL;
	}
	for (;;) {
		uint64_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		int e;
		if (i >= j->n_chunks || __atomic_load_n(&j->failed, __ATOMIC_RELAXED))
			break;
		if (j->done && j->done[i])
			continue;
		read_ahead(j, i);
		e = sig_job_hash(j, i, buf);
		if (e) {
			__atomic_store_n(&j->failed, e, __ATOMIC_RELAXED);
			break;
		}
	}
	free(buf);
	return NULL;
}

int sig_job_threads(int threads, uint64_t n_chunks)
{
	if (threads < 1)
		threads = 1;
	if (threads > SIG_MAX_THREADS)
		threads = SIG_MAX_THREADS;
	if ((uint64_t)threads > n_chunks)
		threads = n_chunks ? (int)n_chunks : 1;
	return threads;
}

int sig_payload_digest_info(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
			    uint8_t out[SIG_HASH], struct sig_info *info)
{
	return sig_job_digest(fd, off, len, chunk, threads, NULL, out, info);
}

/* Into j, the hashes of pre's chunks that lie wholly within j's region. */
static int take_pre(struct sig_job *j, const struct sig_pre *pre)
{
	uint8_t *done = calloc(j->n_chunks + 1, 1);

	if (!done)
		return err_sys(EXIT_FAIL, "payload digest");
	for (uint64_t i = 0; i < j->n_chunks && i < pre->n_chunks; i++) {
		if (pre->done[i] && (i + 1) * j->chunk <= j->len) {
			memcpy(j->hashes + i * SIG_HASH, pre->hashes + i * SIG_HASH, SIG_HASH);
			done[i] = 1;
		}
	}
	j->done = done;
	return 0;
}

int sig_job_digest(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
		   const struct sig_pre *pre, uint8_t out[SIG_HASH], struct sig_info *info)
{
	struct sig_job j = { .fd = fd, .off = off, .len = len, .chunk = chunk };
	pthread_t tid[SIG_MAX_THREADS];
	int started = 0, fl;
	uint64_t t0 = now_ms();
	struct stat st;

	if (chunk < 4096 || (chunk & (chunk - 1)))
		return err_set(EXIT_FAIL, "digest chunk %u is not a power of two >= 4096", chunk);
	/* SEEK_DATA cannot tell a hole from the end of a file: refuse a region past it. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && off + len > (uint64_t)st.st_size)
		return err_set(EXIT_FAIL, "payload digest: the region ends at %llu, past the end of the file (%llu)",
			       (unsigned long long)(off + len), (unsigned long long)st.st_size);
	j.n_chunks = (len + chunk - 1) / chunk;
	j.hashes = malloc(j.n_chunks ? j.n_chunks * SIG_HASH : 1);
	if (!j.hashes)
		return err_sys(EXIT_FAIL, "payload digest");
	sig_zero_hash(chunk, j.zero_hash);
	if (pre && take_pre(&j, pre) < 0) {
		free(j.hashes);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	j.direct = fl >= 0 && (fl & O_DIRECT); /* a failing fcntl: read as buffered */
	threads = sig_job_threads(j.direct ? 4 * threads : threads, j.n_chunks);
	if (!j.direct)
		posix_fadvise(fd, (off_t)off, (off_t)(len < AHEAD ? len : AHEAD), POSIX_FADV_WILLNEED);
	for (; started < threads - 1; started++)
		if (pthread_create(&tid[started], NULL, worker, &j))
			break;
	worker(&j); /* this thread works too */
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (j.failed) {
		free(j.hashes);
		free((void *)j.done);
		errno = j.failed;
		return err_sys(EXIT_FAIL, "reading the image for its payload digest");
	}
	sig_payload_root(chunk, len, j.hashes, j.n_chunks, out);
	free((void *)j.done);
	if (info && info->keep_table)
		info->table = j.hashes;
	else
		free(j.hashes);
	if (info) {
		info->bytes = len;
		info->bytes_read = j.bytes_read;
		info->bytes_early = pre ? pre->bytes : 0;
		info->ms = now_ms() - t0;
		info->threads = started + 1;
	}
	return 0;
}
