/* sign_digest: the payload digest of an image's stream region (see sign.h):
 * root = SHA-256("vmsnap-payload-v1", chunk, length, H(chunk 0), H(chunk 1)...),
 * chunks hashed in parallel, holes recognised with SEEK_DATA and not read. */
#include "sign.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbedtls/sha256.h"

#define READ_PIECE (256u << 10) /* per-thread buffer: keeps RSS small */
#define MAX_THREADS 16

struct job {
	int fd;
	uint64_t off, len;
	uint32_t chunk;
	uint64_t n_chunks;
	uint8_t *hashes;
	uint8_t zero_hash[SIG_HASH]; /* of a whole zero chunk */
	uint64_t next;               /* next chunk to take (atomic) */
	int failed;                  /* errno of the first failure (atomic) */
};

void sig_sha256(const void *buf, size_t len, uint8_t out[SIG_HASH])
{
	mbedtls_sha256(buf, len, out, 0);
}

static void zero_hash(uint64_t len, uint8_t *buf, uint8_t out[SIG_HASH])
{
	mbedtls_sha256_context c;

	memset(buf, 0, READ_PIECE);
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	while (len) {
		size_t n = len < READ_PIECE ? (size_t)len : READ_PIECE;
		mbedtls_sha256_update(&c, buf, n);
		len -= n;
	}
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

static int hash_chunk(struct job *j, uint64_t i, uint8_t *buf)
{
	uint64_t start = j->off + i * j->chunk;
	uint64_t len = j->len - i * j->chunk < j->chunk ? j->len - i * j->chunk : j->chunk;
	uint8_t *out = j->hashes + i * SIG_HASH;
	mbedtls_sha256_context c;

	if (is_hole(j->fd, start, len)) {
		if (len == j->chunk)
			memcpy(out, j->zero_hash, SIG_HASH);
		else
			zero_hash(len, buf, out);
		return 0;
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < READ_PIECE ? (size_t)(len - done) : READ_PIECE;
		ssize_t r = pread_all(j->fd, buf, n, (off_t)(start + done));
		if (r < 0 || (size_t)r != n) {
			mbedtls_sha256_free(&c);
			return r < 0 ? errno : EIO;
		}
		mbedtls_sha256_update(&c, buf, n);
		done += n;
	}
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
	return 0;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	uint8_t *buf = malloc(READ_PIECE);

	if (!buf) {
		__atomic_store_n(&j->failed, ENOMEM, __ATOMIC_RELAXED);
		return NULL;
	}
	for (;;) {
		uint64_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		int e;
		if (i >= j->n_chunks || __atomic_load_n(&j->failed, __ATOMIC_RELAXED))
			break;
		e = hash_chunk(j, i, buf);
		if (e) {
			__atomic_store_n(&j->failed, e, __ATOMIC_RELAXED);
			break;
		}
	}
	free(buf);
	return NULL;
}

int sig_payload_digest(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
		       uint8_t out[SIG_HASH])
{
	struct job j = { .fd = fd, .off = off, .len = len, .chunk = chunk };
	pthread_t tid[MAX_THREADS];
	int started = 0;
	uint8_t hdr[18 + 16], *buf;
	mbedtls_sha256_context c;
	struct stat st;

	if (chunk < 4096 || (chunk & (chunk - 1)))
		return err_set(EXIT_FAIL, "digest chunk %u is not a power of two >= 4096", chunk);
	/* SEEK_DATA cannot tell a hole from the end of a file: refuse a region past it. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && off + len > (uint64_t)st.st_size)
		return err_set(EXIT_FAIL, "payload digest: the region ends at %llu, past the end of the file (%llu)",
			       (unsigned long long)(off + len), (unsigned long long)st.st_size);
	j.n_chunks = (len + chunk - 1) / chunk;
	j.hashes = malloc(j.n_chunks ? j.n_chunks * SIG_HASH : 1);
	buf = malloc(READ_PIECE);
	if (!j.hashes || !buf) {
		free(j.hashes);
		free(buf);
		return err_sys(EXIT_FAIL, "payload digest");
	}
	zero_hash(chunk, buf, j.zero_hash);
	free(buf);
	if (threads < 1)
		threads = 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if ((uint64_t)threads > j.n_chunks)
		threads = j.n_chunks ? (int)j.n_chunks : 1;
	for (; started < threads - 1; started++)
		if (pthread_create(&tid[started], NULL, worker, &j))
			break;
	worker(&j); /* this thread works too */
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (j.failed) {
		free(j.hashes);
		errno = j.failed;
		return err_sys(EXIT_FAIL, "reading the image for its payload digest");
	}
	memcpy(hdr, "vmsnap-payload-v1", 18);
	for (int i = 0; i < 8; i++) {
		hdr[18 + i] = (uint8_t)((uint64_t)chunk >> (8 * i));
		hdr[26 + i] = (uint8_t)(len >> (8 * i));
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	mbedtls_sha256_update(&c, hdr, sizeof(hdr));
	mbedtls_sha256_update(&c, j.hashes, j.n_chunks * SIG_HASH);
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
	free(j.hashes);
	return 0;
}
