/* sign_job: what the two ways of computing the payload digest share (sign.h):
 * a job over the chunks of a file region, the hash of one chunk, and the
 * threaded pass that hashes the chunks not already hashed. Internal to
 * sign_digest.c and sign_early.c. */
#ifndef VMSNAP_SIGN_JOB_H
#define VMSNAP_SIGN_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "sign.h"

#define SIG_READ_PIECE (1u << 20) /* per-thread buffer: one read per 1 MiB chunk */

struct sig_job {
	int fd;
	uint64_t off, len;
	uint32_t chunk;
	uint64_t n_chunks;
	uint8_t *hashes;
	uint8_t zero_hash[SIG_HASH]; /* of a whole zero chunk */
	uint64_t next;               /* next chunk to take (atomic) */
	uint64_t bytes_read;         /* (atomic) */
	int failed;                  /* errno of the first failure (atomic) */
	const uint8_t *done;         /* chunks already hashed (early), or NULL */
	bool direct;                 /* fd has O_DIRECT: aligned reads, no read-ahead */
};

/* Chunks hashed before the pass: done[i] set means hashes holds chunk i's
 * hash (of a region with the same offset and chunk size). */
struct sig_pre {
	uint8_t *hashes, *done;
	uint64_t n_chunks;
	uint64_t bytes; /* what hashing them read */
	uint64_t off;   /* the region's offset, chunk size */
	uint32_t chunk;
};

/* Hash chunk i of j into j->hashes; 0 or an errno. */
int sig_job_hash(struct sig_job *j, uint64_t i, uint8_t *buf);
int sig_job_threads(int threads, uint64_t n_chunks);
/* The digest of [off, off+len) of fd; chunks in pre (may be NULL) keep
 * their hash and are not read again. */
int sig_job_digest(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
		   const struct sig_pre *pre, uint8_t out[SIG_HASH], struct sig_info *info);

#endif
